# 使用select实现并发的服务器
import select
import socket

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('', 9000))
server.listen(1000)

inputs = [server]  # 需要select帮我们监控的套接字

while True:
    # select会阻塞,直到inputs里面有套接字可读,返回可读、可写、异常三个列表
    readable, _, _ = select.select(inputs, [], [])
    for sock in readable:
        if sock is server:
            conn, addr = server.accept()  # 有新客户端连进来了
            print('new client', addr)
            inputs.append(conn)  # 交给select监控
        else:
            data = sock.recv(1024)
            if data:
                sock.send(data)
            else:
                print('client left')
                sock.close()  # 关闭连接(但是忘了 inputs.remove(sock),下一次select就会报错)
