param ipv6port string
output ipv6port string = ipv6port