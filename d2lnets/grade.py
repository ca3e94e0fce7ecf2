"""``python -m d2lnets.grade SUBMISSIONS/ --assignment residual``: see `d2lnets.classroom.grade`."""
from .classroom.grade import main

if __name__ == '__main__':
    main()
