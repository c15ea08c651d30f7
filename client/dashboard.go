package client

import "embed"

// Dashboard holds the operators' dashboard page, its script and style.
//
//go:embed dashboard/dashboard.html dashboard/dashboard.js dashboard/dashboard.css
var Dashboard embed.FS
