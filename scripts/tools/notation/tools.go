//go:build tools

package tools

import _ "github.com/notaryproject/notation/cmd/notation"
