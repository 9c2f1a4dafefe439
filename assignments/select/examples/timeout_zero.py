# 使用select实现并发的服务器:select的超时写成了0,它就不等待了,立刻返回
import select
import socket

server = socket.socket()
server.bind(('', 9000))
server.listen(1000)
inputs = [server]

while True:
    readable, _, _ = select.select(inputs, [], [], 0)  # 超时为0:马上返回
    for sock in readable:
        if sock is server:
            conn, addr = server.accept()
            inputs.append(conn)
        else:
            recv_data = sock.recv(1024)
            if recv_data:
                print(recv_data.decode())
                sock.send(recv_data)
            else:
                inputs.remove(sock)  # 先从监控列表里移除
                sock.close()  # 再关闭
