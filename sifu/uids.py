"""The range of uids students' kernels run as: UID_BASE + the student's row id in Sifu's database (sifu/db.py).

Its own module so that the kernel broker, which checks every uid it is asked for, does not import SQLAlchemy
with sifu.db (about 0.2 s of CPU at every container start)."""

# Far above any system or login user (and below the 2**31 that some tools mistake for negative).
UID_BASE = 200_000
UID_LIMIT = 2 ** 31 - 1
