real_server 10.0.4.2 80 {
    TCP_CHECK {
    }
}
