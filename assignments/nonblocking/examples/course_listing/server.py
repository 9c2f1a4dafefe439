# 使用非阻塞套接字实现并发: the course's listing, as printed
import socket

server = socket.socket()  # 生成套接字
server.setblocking(False)  # 非阻塞
server.bind(('', 7788))
server.listen(1000)
# 我们现在生成的非阻塞套接字,非阻塞套接字在执行accept跟recv的时候不会阻塞,但是会报错,
# 所以我们写非阻塞的并发服务器需要用到异常处理
all_conn = []  # 用来保存我们所有的已经生成的套接字(这个客户端还在连接着)
while True:
    # 处理连接,生成对等连接套接字
    try:
        conn, addr = server.accept()
        conn.setblocking(False)  # conn是新生成的,需要给它设置一下非阻塞
        all_conn.append(conn)  # 这一行代码的前提是,上面一行代码正常返回
    except BlockingIOError:
        pass
    for conn in all_conn:
        try:
            # 只负责接受数据
            recv_data = conn.recv(1024)
            if recv_data:
                res = recv_data.decode()
                print(res)
                conn.send(recv_data)
            else:
                conn.close()
                all_conn.remove(conn)  # 客户端关闭连接,就把它移除
        except BlockingIOError:
            pass
