"""The classroom kit: assignments for the chapters' blocks, a checker that
judges a student's block by what it computes, and batch grading.

`checker` (verdicts and messages), `observe` (running a block and recording
what it computes), `limits` (the one time limit for all student code),
`assignments` (the tasks, their checks and student templates), `records`
(observations as files), `runner` (the student's process when grading) and
`grade` (``python -m d2lnets.grade``). The teachers' guide is docs/teaching.md.
"""
