import sys

while True:
    sys.stdout.write("x" * 4096 + "\n")
