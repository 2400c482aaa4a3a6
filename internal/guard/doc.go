// Package guard holds the repository's guard tests: plain Go tests that
// walk the module and fail when a file is not gofmt-clean, a package lacks
// its doc comment, or a package imports what the house style forbids
// (style.md §3 and §10.9; wireguard-go format_test.go, tailscale
// pkgdoc_test.go and tstest/deptest). It has no non-test code.
package guard
