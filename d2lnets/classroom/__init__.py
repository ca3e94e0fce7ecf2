"""The classroom kit: assignments for the chapters' blocks, a checker that
judges a student's block by what it computes, and sandboxed batch grading.

`checker` (verdicts and messages), `observe` (running a block and recording
what it computes), `limits` (the one time limit for all student code),
`assignments` (the tasks, their checks, points and student templates);
for grading (``python -m d2lnets.grade``): `submissions` (finding and reading
a class's files), `sandbox` (bubblewrap, and collecting what comes back),
`kit` (the d2lnets a sandbox sees, without the references), `runner` (the
submission's side, inside the sandbox), `channel` (the messages on the
results pipe), `received` (checking them and drawing verdicts), `gradebook`
(the CSV, its history, the roster, Canvas and Moodle exports), `similarity`
(near-identical submissions) and `grade` (the command). The teachers' guide,
with the threat model, is docs/teaching.md.
"""
