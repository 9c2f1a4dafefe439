import socket

server = socket.socket()
server.bind(("", 8888))
print("done")
