# 使用SelectSelector,实现一个并发的服务器(IO多路复用的 select 版本,epoll 之前的一课)
import socket
import selectors  # IO多路复用选择器的模块,接口,这里调用select

select_selector = selectors.SelectSelector()  # 创建一个用来和select通信的选择器

server = socket.socket()
server.bind(('', 8888))
server.listen(1000)


def read(conn):
    recv_data = conn.recv(1024)
    if recv_data:
        print(recv_data.decode())
        conn.send(recv_data)
    else:
        select_selector.unregister(conn)  # 数据已经传输完了,不用再让select监控它了,所以先关闭监控
        conn.close()  # 再关闭连接


def accept(server):
    conn, addr = server.accept()  # 生成一个对等连接套接字
    # 要准备接受数据
    select_selector.register(conn, selectors.EVENT_READ, read)


select_selector.register(server, selectors.EVENT_READ, accept)  # 注册事件在可以读的时候的回调函数

# 事件循环(主动去问select,哪些socket可以回调了,如果有了,那我就回调)
while True:
    events = select_selector.select()  # 查询所有的已经准备好的事件,返回一个列表(二元组列表)
    for key, mask in events:
        callback = key.data  # 从key里面把回掉函数拿出来
        sock = key.fileobj  # 从key里面把我们注册的那个socket拿出来
        callback(sock)
