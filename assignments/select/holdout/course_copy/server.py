# select版本的并发服务器(照着课上的例子写的)
import socket
import select

server = socket.socket()
server.bind(('', 8888))
server.listen(1000)

rlist = [server]  # 要监控的套接字

while True:
    rs, ws, xs = select.select(rlist, [], [])  # 让操作系统帮我们监控,有可读的才返回
    for s in rs:
        if s == server:
            conn, addr = server.accept()  # 生成一个对等连接套接字
            rlist.append(conn)
        else:
            recv_data = s.recv(1024)
            if recv_data:
                print(recv_data.decode())
                s.send(recv_data)
            else:
                rlist.remove(s)  # 不用再监控它了
                s.close()  # 关闭连接
