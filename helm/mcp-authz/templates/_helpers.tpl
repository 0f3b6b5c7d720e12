{{/*
Names, labels, images and the generated mcp-authz configuration and Envoy
deployment description shared by the templates.
*/}}

{{- define "mcp-authz.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mcp-authz.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mcp-authz.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mcp-authz.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcp-authz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mcp-authz.labels" -}}
helm.sh/chart: {{ include "mcp-authz.chart" . }}
{{ include "mcp-authz.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- end }}

{{- define "mcp-authz.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mcp-authz.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* `repository:tag` or `repository@digest`. Argument: an image values map and the default tag. */}}
{{- define "mcp-authz.image" -}}
{{- $img := index . 0 -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository (default (index . 1) $img.tag) -}}
{{- end -}}
{{- end }}

{{- define "mcp-authz.sessionKeySecret" -}}
{{- default (printf "%s-session-key" (include "mcp-authz.fullname" .)) .Values.secrets.sessionKey.existingSecret }}
{{- end }}

{{/* Where the pod mounts each file (all under base_dir /etc/mcp-authz). */}}
{{- define "mcp-authz.baseDir" -}}/etc/mcp-authz{{- end }}

{{/*
The mcp-authz configuration: the user's `config` plus the keys the chart owns
(listen addresses, mounted policy, registry, JWKS and secret files).
*/}}
{{- define "mcp-authz.config" -}}
{{- $v := .Values -}}
{{- range $k := list "base_dir" "listen" "policies" "registry" -}}
{{- if hasKey $v.config $k }}
{{- fail (printf "config.%s is set by the chart: remove it from your values" $k) }}
{{- end }}
{{- end }}
{{- $cfg := deepCopy $v.config -}}
{{- $public := ternary "127.0.0.1" $v.listenAddress (eq $v.mode "sidecar") -}}
{{- $_ := set $cfg "base_dir" (include "mcp-authz.baseDir" .) -}}
{{- $_ := set $cfg "listen" (dict
      "grpc" (printf "%s:%d" $v.listenAddress (int $v.ports.grpc))
      "admin" (printf "%s:%d" $v.listenAddress (int $v.ports.admin))
      "public" (printf "%s:%d" $public (int $v.ports.public))) -}}
{{- $policies := dict "schema" "policies/schema.cedarschema" "files" (list "policies") -}}
{{- if $v.shadowPolicies }}{{ $_ := set $policies "shadow" (list "shadow-policies") }}{{ end -}}
{{- if $v.policyTests }}{{ $_ := set $policies "tests" (list "policy-tests") }}{{ end -}}
{{- $_ := set $cfg "policies" $policies -}}
{{- $_ := set $cfg "registry" (dict "files" (list "registry")) -}}
{{- $sessions := default (dict) $cfg.sessions -}}
{{- if hasKey $sessions "key_file" }}{{ fail "config.sessions.key_file is set by the chart: use secrets.sessionKey" }}{{ end -}}
{{- $_ := set $sessions "key_file" (printf "secrets/session/%s" $v.secrets.sessionKey.key) -}}
{{- $_ := set $cfg "sessions" $sessions -}}
{{- $issuers := list -}}
{{- $names := list -}}
{{- range $i := $cfg.issuers -}}
{{- if hasKey $i "hmac_secret_file" }}{{ fail (printf "config.issuers[%s].hmac_secret_file is set by the chart: use secrets.hmac.%s" $i.name $i.name) }}{{ end -}}
{{- $h := index $v.secrets.hmac $i.name -}}
{{- if $h }}{{ $_ := set $i "hmac_secret_file" (printf "secrets/hmac-%s/%s" $i.name $h.key) }}{{ end -}}
{{- $issuers = append $issuers $i -}}
{{- $names = append $names $i.name -}}
{{- end -}}
{{- range $name, $_ := $v.secrets.hmac -}}
{{- if not (has $name $names) }}{{ fail (printf "secrets.hmac.%s names no issuer in config.issuers" $name) }}{{ end -}}
{{- end -}}
{{- $_ := set $cfg "issuers" $issuers -}}
{{- if $v.secrets.forwarded.existingSecret -}}
{{- $api := default (dict) $cfg.api -}}
{{- $_ := set $api "forwarded_secret_file" (printf "secrets/forwarded/%s" $v.secrets.forwarded.key) -}}
{{- $_ := set $cfg "api" $api -}}
{{- end -}}
{{- if $v.secrets.approvalsDatabase.existingSecret -}}
{{- $ap := default (dict) $cfg.approvals -}}
{{- if hasKey $ap "database" }}{{ fail "config.approvals.database and secrets.approvalsDatabase: set one" }}{{ end -}}
{{- $_ := set $ap "database_url_file" (printf "secrets/approvals-db/%s" $v.secrets.approvalsDatabase.key) -}}
{{- $_ := set $cfg "approvals" $ap -}}
{{- else if and (hasKey $cfg "approvals") (not (hasKey (default (dict) $cfg.approvals) "database")) -}}
{{- if or $v.autoscaling.enabled (gt (int $v.replicaCount) 1) }}{{ fail "config.approvals with more than one replica needs the shared PostgreSQL of secrets.approvalsDatabase: a per-pod SQLite file would let each replica keep its own approvals" }}{{ end -}}
{{- $ap := default (dict) $cfg.approvals -}}
{{- $_ := set $ap "database" "sqlite:/var/lib/mcp-authz/approvals.db" -}}
{{- $_ := set $cfg "approvals" $ap -}}
{{- end -}}
{{- if and (hasKey $cfg "approvals") (not (hasKey (default (dict) $cfg.approvals) "approval_url")) }}{{ fail "config.approvals.approval_url is required: the address of the approvals page approvers open (its default names the pod's own admin address)" }}{{ end -}}
{{- if $v.grpcTls.existingSecret -}}
{{- if eq $v.mode "sidecar" }}{{ fail "grpcTls applies to standalone mode: in sidecar mode Envoy reaches mcp-authz on loopback" }}{{ end -}}
{{- $tls := dict "certificate" "secrets/grpc-tls/tls.crt" "private_key" "secrets/grpc-tls/tls.key" -}}
{{- if $v.grpcTls.requireClientCertificate }}{{ $_ := set $tls "client_ca" "secrets/grpc-tls/ca.crt" }}{{ end -}}
{{- $_ := set (index $cfg "listen") "grpc_tls" $tls -}}
{{- end -}}
{{- if $v.secrets.probeToken.existingSecret -}}
{{- $probe := default (dict) $cfg.probe -}}
{{- $_ := set $probe "bearer_token_file" (printf "secrets/probe/%s" $v.secrets.probeToken.key) -}}
{{- $_ := set $cfg "probe" $probe -}}
{{- end -}}
{{- toYaml $cfg }}
{{- end }}

{{/*
The deployment description `mcp-authz envoy render` reads (sidecar mode):
Envoy's listener and admin, mcp-authz on loopback, upstreams.
*/}}
{{- define "mcp-authz.envoyDeployment" -}}
{{- $v := .Values -}}
{{- $listener := dict "name" "mcp" "address" (printf "0.0.0.0:%d" (int $v.envoy.port)) -}}
{{- if $v.envoy.tls.existingSecret -}}
{{- $tls := dict "certificate" "/etc/envoy-tls/tls.crt" "private_key" "/etc/envoy-tls/tls.key" -}}
{{- if $v.envoy.tls.requireClientCertificate }}{{ $_ := set $tls "client_ca" "/etc/envoy-tls/ca.crt" }}{{ end -}}
{{- $_ := set $listener "tls" $tls -}}
{{- end -}}
{{- $d := dict
      "admin" (printf "0.0.0.0:%d" (int $v.envoy.adminPort))
      "listeners" (list $listener)
      "authz" (dict
        "grpc" (printf "127.0.0.1:%d" (int $v.ports.grpc))
        "public" (printf "127.0.0.1:%d" (int $v.ports.public))
        "timeout" $v.envoy.authzTimeout)
      "upstreams" $v.envoy.upstreams
      "stream_idle_timeout" $v.envoy.streamIdleTimeout
      "access_log" $v.envoy.accessLog -}}
{{- toYaml $d }}
{{- end }}

{{/* Pod annotations whose change rolls the pods. */}}
{{- define "mcp-authz.checksums" -}}
checksum/config: {{ include "mcp-authz.config" . | sha256sum }}
{{- if eq .Values.mode "sidecar" }}
checksum/envoy-deployment: {{ include "mcp-authz.envoyDeployment" . | sha256sum }}
checksum/registry: {{ toYaml .Values.registry | sha256sum }}
{{- end }}
checksum/jwks: {{ toYaml .Values.jwks | sha256sum }}
{{- end }}

{{/* mcp-authz's mounts (the render init container has the same). */}}
{{- define "mcp-authz.volumeMounts" -}}
{{- $v := .Values -}}
{{- $base := include "mcp-authz.baseDir" . -}}
- name: config
  mountPath: {{ $base }}/config
  readOnly: true
- name: policies
  mountPath: {{ $base }}/policies
  readOnly: true
{{- if $v.shadowPolicies }}
- name: shadow-policies
  mountPath: {{ $base }}/shadow-policies
  readOnly: true
{{- end }}
{{- if $v.policyTests }}
- name: policy-tests
  mountPath: {{ $base }}/policy-tests
  readOnly: true
{{- end }}
- name: registry
  mountPath: {{ $base }}/registry
  readOnly: true
{{- if $v.jwks }}
- name: jwks
  mountPath: {{ $base }}/jwks
  readOnly: true
{{- end }}
- name: session-key
  mountPath: {{ $base }}/secrets/session
  readOnly: true
{{- range $issuer, $_ := $v.secrets.hmac }}
- name: hmac-{{ $issuer }}
  mountPath: {{ $base }}/secrets/hmac-{{ $issuer }}
  readOnly: true
{{- end }}
{{- if $v.secrets.forwarded.existingSecret }}
- name: forwarded-secret
  mountPath: {{ $base }}/secrets/forwarded
  readOnly: true
{{- end }}
{{- if $v.secrets.approvalsDatabase.existingSecret }}
- name: approvals-db
  mountPath: {{ $base }}/secrets/approvals-db
  readOnly: true
{{- end }}
- name: approvals-data
  mountPath: /var/lib/mcp-authz
{{- if $v.grpcTls.existingSecret }}
- name: grpc-tls
  mountPath: {{ $base }}/secrets/grpc-tls
  readOnly: true
{{- end }}
{{- if $v.secrets.probeToken.existingSecret }}
- name: probe-token
  mountPath: {{ $base }}/secrets/probe
  readOnly: true
{{- end }}
{{- end }}
