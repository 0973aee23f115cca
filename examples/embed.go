// Package examples holds pages that use avatarproxy the way our users do: a
// CRM contact list and an HTML email. Demo mode serves them under /demo/,
// next to the avatars they show, and the browser test drives them.
package examples

import "embed"

// FS holds the example pages.
//
//go:embed *.html
var FS embed.FS
