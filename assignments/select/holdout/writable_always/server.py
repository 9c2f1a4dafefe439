# select 回显服务器:每个连接都有自己的发送缓冲区
import select
import socket

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.setblocking(False)
server.bind(('', 9000))
server.listen(100)

inputs = [server]
outputs = []
buffers = {}


def remove(s):
    outputs.remove(s)
    inputs.remove(s)
    del buffers[s]
    s.close()


while True:
    readable, writable, _ = select.select(inputs, outputs, [])
    for s in readable:
        if s is server:
            try:
                conn, addr = s.accept()
            except BlockingIOError:
                continue
            conn.setblocking(False)
            inputs.append(conn)
            outputs.append(conn)          # 也监控可写,有数据就能马上发
            buffers[conn] = bytearray()
        else:
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b''
            if data:
                buffers[s] += data
            else:
                remove(s)
    for s in writable:
        if s not in buffers or not buffers[s]:
            continue
        try:
            sent = s.send(buffers[s])
        except BlockingIOError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            remove(s)
            continue
        del buffers[s][:sent]
