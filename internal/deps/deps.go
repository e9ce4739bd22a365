// Package deps pins modules that packages under construction will import.
package deps

import (
	_ "github.com/gin-gonic/gin"
	_ "github.com/hashicorp/golang-lru/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "golang.org/x/net/http2"
	_ "k8s.io/api/discovery/v1"
	_ "k8s.io/client-go/kubernetes"
	_ "sigs.k8s.io/gateway-api/apis/v1"
	_ "sigs.k8s.io/yaml"
)
