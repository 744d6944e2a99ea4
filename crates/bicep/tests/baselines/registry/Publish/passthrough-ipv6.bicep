param ipv6 string
output ipv6 string = ipv6