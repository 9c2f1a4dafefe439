import socket

server = socket.socket()          # 生成套接字
server.setblocking(False)         # 非阻塞
server.bind(('', 7788))
server.listen(1000)

# 非阻塞套接字在执行accept跟recv的时候不会阻塞,但是会报错,所以要用异常处理
all_conn = []   # 保存所有还连接着的套接字

while True:
    # 处理连接,生成对等连接套接字
    try:
        conn, addr = server.accept()
        conn.setblocking(False)   # conn是新生成的,需要设置非阻塞
        all_conn.append(conn)
    except BlockingIOError:
        pass

    for conn in all_conn:
        try:
            recv_data = conn.recv(1024)
            if recv_data:
                res = recv_data.decode()
                print(res)
                conn.send(recv_data)
            else:
                conn.close()
                all_conn.remove(conn)   # 客户端关闭连接,就把它移除
        except BlockingIOError:
            pass
