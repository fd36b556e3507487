{{/* Names and labels shared by the templates. */}}
{{- define "concord.fullname" -}}
{{- printf "%s-%s" .root.Release.Name .instance.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "concord.labels" -}}
app.kubernetes.io/name: concord
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .instance.kind }}
concord.hub/agency: {{ .instance.agency }}
{{- end -}}

{{- define "concord.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
concord.hub/agency: {{ .instance.agency }}
{{- end -}}

{{/* The file name of an instance's state. */}}
{{- define "concord.database" -}}
{{- $files := dict "issuer" "ledger.sqlite" "exchange" "ledger.sqlite" "committee" "state.sqlite" "enforcement" "cases.sqlite" "audit" "audit-log.sqlite" -}}
/var/lib/concord/{{ get $files .kind }}
{{- end -}}
