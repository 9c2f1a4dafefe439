import time

# forgot to start the server: waits forever
while True:
    time.sleep(1)
