param ipv4 string
output ipv4 string = ipv4