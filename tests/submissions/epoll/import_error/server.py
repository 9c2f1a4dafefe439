import socket
import selector  # typo: the module is selectors

server = socket.socket()
server.bind(("", 8888))
server.listen(5)
