#!/usr/bin/env bash
# Dev tool, not used by the tests: replay the requests behind README.md's quirks
# report against a running SCIM server and print status, headers and bodies.
# Needs curl and jq. Creates resources on the target.
#   tests/interop/probe.sh http://127.0.0.1:PORT/v2          (scim2-server)
#   tests/interop/probe.sh http://127.0.0.1:PORT/scim/v2     (scimmy)
set -u
B="${1:?usage: probe.sh SCIM_BASE_URL}"
T="$(mktemp -d)"; trap 'rm -rf "$T"' EXIT
CT='Content-Type: application/scim+json'
req() { # method path [body] [extra header]
  local m=$1 p=$2 body=${3:-} h=${4:-}
  local args=(-s -X "$m" -D $T/hdr -o $T/body -w '%{http_code}' "$B$p")
  [[ -n $body ]] && args+=(-H "$CT" --data "$body")
  [[ -n $h ]] && args+=(-H "$h")
  rm -f $T/body $T/hdr; local code; code=$(curl "${args[@]}")
  echo "=== $m $p ${h:+[$h]}"
  [[ -n $body ]] && echo ">>> $body"
  echo "<<< $code $(grep -i '^\(etag\|content-type\|location\):' $T/hdr | tr -d '\r' | tr '\n' ' ')"
  if [[ -s $T/body ]]; then jq -c . $T/body 2>/dev/null || cat $T/body; echo; else echo "(empty body)"; fi
  if [[ -f $T/body ]]; then cp $T/body $T/last; else : > $T/last; fi
}
last() { jq -r "$1" $T/last; }
ENT=urn:ietf:params:scim:schemas:extension:enterprise:2.0:User
U1='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","'$ENT'"],"userName":"bjensen","externalId":"ext-1","name":{"givenName":"Barbara","familyName":"Jensen"},"displayName":"Babs Jensen","emails":[{"value":"bjensen@example.com","type":"work","primary":true}],"active":true,"'$ENT'":{"employeeNumber":"701984","department":"Tour Operations"}}'
req POST /Users "$U1"; ID1=$(last .id); ETAG1=$(grep -i '^etag:' $T/hdr | cut -d' ' -f2- | tr -d '\r')
req GET /Users/$ID1
req POST /Users '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice","externalId":"ext-2"}'; ID2=$(last .id)
req POST /Users '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"carol"}'; ID3=$(last .id)
req GET '/Users?filter=userName%20eq%20%22bjensen%22'
req GET '/Users?filter=userName%20eq%20%22BJENSEN%22'
req GET '/Users?filter=userName%20eq%20%22bjensen%22%20or%20userName%20eq%20%22alice%22'
req GET '/Users?filter=externalId%20eq%20%22ext-2%22'
req GET '/Users?filter=emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22bjensen@example.com%22'
req GET '/Users?filter=emails.value%20eq%20%22bjensen@example.com%22'
req GET "/Users?filter=$ENT:employeeNumber%20eq%20%22701984%22"
req GET '/Users?filter=nosuch%20eq%20%22x%22'
req GET '/Users?filter=userName%20eq'
req GET '/Users?startIndex=1&count=2'
req GET '/Users?startIndex=3&count=2'
req GET '/Users?count=1'
req GET '/Users?count=0'
req GET '/Users?count=5000'
req GET '/Users?startIndex=0'
req GET '/Users?cursor'
req GET '/Users?cursor=&count=2'
req GET '/Users?sortBy=userName&sortOrder=descending&attributes=userName'
req GET '/Users?attributes=userName'
req GET "/Users/$ID1?excludedAttributes=emails"
req PUT /Users/$ID1 '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen","externalId":"ext-1","displayName":"Put Name","title":"Boss","active":true}'
req GET /Users/$ID1
P='{"schemas":["urn:ietf:params:api:messages:2.0:PatchOp"],"Operations":'
req PATCH /Users/$ID1 "${P/api/scim:api}"'[{"op":"replace","path":"displayName","value":"Patched"}]}'
req PATCH /Users/$ID1 "${P/api/scim:api}"'[{"op":"replace","path":"active","value":false}]}'
req PATCH /Users/$ID1 "${P/api/scim:api}"'[{"op":"remove","path":"title"}]}'
req PATCH /Users/$ID1 "${P/api/scim:api}"'[{"op":"remove","path":"title"}]}'
req PATCH /Users/$ID1 "${P/api/scim:api}"'[{"op":"replace","path":"emails","value":[{"value":"new@example.com","type":"work","primary":true}]}]}'
req PATCH /Users/$ID1 "${P/api/scim:api}"'[{"op":"replace","path":"'$ENT':department","value":"Sales"}]}'
req PATCH /Users/$ID1 "${P/api/scim:api}"'[{"op":"replace","value":{"displayName":"NoPath","'$ENT':employeeNumber":"9"}}]}'
req PATCH /Users/$ID1 "${P/api/scim:api}"'[{"op":"replace","path":"active","value":"False"}]}'
req PATCH /Users/$ID1 "${P/api/scim:api}"'[{"op":"replace","path":"emails[type eq \"work\"].value","value":"w2@example.com"}]}'
req PATCH /Users/$ID1 "${P/api/scim:api}"'[{"op":"replace","path":"nosuch","value":"x"}]}'
req GET /Users/$ID1
# conflicts / errors
req POST /Users '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen"}'
req POST /Users '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"BJensen"}'
req PUT /Users/$ID2 '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bjensen"}'
req POST /Users '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}'
req POST /Users '{"userName":"noschemas"}'
req POST /Users '{not json'
req POST /Users '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x1","active":"notbool"}'
req GET /Users/does-not-exist
req PUT /Users/does-not-exist '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ghost"}'
req PATCH /Users/does-not-exist "${P/api/scim:api}"'[{"op":"replace","path":"displayName","value":"x"}]}'
req DELETE /Users/does-not-exist
# etag
req GET /Users/$ID2; E2=$(grep -i '^etag:' $T/hdr | cut -d' ' -f2- | tr -d '\r'); echo "etag=$E2"
req GET /Users/$ID2 '' "If-None-Match: $E2"
req PATCH /Users/$ID2 "${P/api/scim:api}"'[{"op":"replace","path":"displayName","value":"x"}]}' 'If-Match: W/"bogus"'
req PATCH /Users/$ID2 "${P/api/scim:api}"'[{"op":"replace","path":"displayName","value":"x"}]}' "If-Match: $E2"
# groups
G='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Tour Guides","externalId":"g-ext","members":[{"value":"'$ID1'"}]}'
req POST /Groups "$G"; GID=$(last .id)
req POST /Groups '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Bad","members":[{"value":"no-such-user"}]}'
req POST /Groups '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Tour Guides"}'; GDUP=$(last .id)
req PATCH /Groups/$GID "${P/api/scim:api}"'[{"op":"add","path":"members","value":[{"value":"'$ID2'"},{"value":"'$ID3'"}]}]}'
req PATCH /Groups/$GID "${P/api/scim:api}"'[{"op":"add","path":"members","value":[{"value":"'$ID2'"}]}]}'
req PATCH /Groups/$GID "${P/api/scim:api}"'[{"op":"remove","path":"members[value eq \"'$ID2'\"]"}]}'
req PATCH /Groups/$GID "${P/api/scim:api}"'[{"op":"replace","path":"displayName","value":"Guides"}]}'
req PATCH /Groups/$GID "${P/api/scim:api}"'[{"op":"remove","path":"members[value eq \"not-a-member\"]"}]}'
req GET "/Groups/$GID?excludedAttributes=members"
req GET "/Groups?filter=displayName%20eq%20%22Guides%22"
req GET "/Groups?filter=members.value%20eq%20%22$ID3%22&attributes=displayName"
req GET "/Users/$ID3?attributes=groups"
req PUT /Groups/$GID '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Guides","members":[{"value":"'$ID1'"}]}'
# delete
req DELETE /Users/$ID3
req GET /Users/$ID3
req DELETE /Users/$ID3
req GET /Groups/$GID
req DELETE /Groups/$GID
req GET /Groups/$GID
# discovery
req GET /ServiceProviderConfig
req GET /ResourceTypes
req GET /Schemas
req GET /Schemas/$ENT
req GET /NoSuchEndpoint
req POST /Users/.search '{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName eq \"alice\"","count":1}'
