import socket

server = socket.socket()
server.bind(("", 8888)
server.listen(5)
