package ipvsadm

// ListOptions are the options of a listing command (-L/-l, and -S for
// Numeric), shared by the parser, which fills them, and the formatter,
// which obeys them.
type ListOptions struct {
	Numeric        bool // -n: no name resolution
	Connections    bool // -c: the connection table
	Timeout        bool // --timeout
	Daemon         bool // --daemon
	Stats          bool // --stats
	Rate           bool // --rate
	Thresholds     bool // --thresholds
	PersistentConn bool // --persistent-conn
	TunInfo        bool // --tun-info
	NoSort         bool // --nosort
	Exact          bool // -X, --exact
}
