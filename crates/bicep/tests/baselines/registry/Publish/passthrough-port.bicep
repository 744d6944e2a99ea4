param port string
output port string = port

metadata description = 'passthrough port description'
