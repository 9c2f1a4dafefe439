# Allocates until something stops it, before ever listening.
hog = []
while True:
    hog.append(bytearray(16 * 1024 * 1024))
