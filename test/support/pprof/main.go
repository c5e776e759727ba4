// The standalone pprof (github.com/google/pprof's own main), built from the copy every Go toolchain vendors in
// src/cmd/vendor: unlike `go tool pprof`, whose own fetcher ignores them, it presents -tls_cert/-tls_key and
// trusts -tls_ca when it fetches a profile.
package main

import (
	"fmt"
	"os"

	"github.com/google/pprof/driver"
)

func main() {
	if err := driver.PProf(&driver.Options{}); err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		os.Exit(2)
	}
}
