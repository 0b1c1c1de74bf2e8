//go:build tools

package tools

import _ "github.com/ratify-project/ratify/cmd/ratify"
