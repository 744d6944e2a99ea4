param ipv4port string
output ipv4port string = ipv4port