// Package openapi holds the OpenAPI document of the admin API, kept in the
// repository as openapi.json and served by the admin API at /api/v1/openapi.json.
// The admin package's tests check that it describes every endpoint and nothing else.
package openapi

import _ "embed"

// Document is the OpenAPI 3.1 document, JSON-encoded.
//
//go:embed openapi.json
var Document []byte
