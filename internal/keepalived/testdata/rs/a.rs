real_server 10.0.4.1 80 {
    TCP_CHECK {
    }
}
