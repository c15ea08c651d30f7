package client

import "embed"

// Dashboard holds the operators' dashboard page, its script, style and icon.
//
//go:embed dashboard/dashboard.html dashboard/dashboard.js dashboard/dashboard.css dashboard/dashboard.svg
var Dashboard embed.FS
