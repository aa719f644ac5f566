package devenv

// Internals for the external tests (package devenv_test), which use
// internal/testenv and so cannot be in this package.

var (
	WriteClickHouseConfig = writeClickHouseConfig
	ClickHouseTail        = clickHouseTail
	ClickHouseAddrInUse   = clickHouseAddrInUse
)

// SkipPortCheck returns cfg without the check for taken ports before
// starting, so a test reaches the server's own "address in use" path.
func SkipPortCheck(cfg ClickHouseConfig) ClickHouseConfig {
	cfg.skipPortCheck = true
	return cfg
}
