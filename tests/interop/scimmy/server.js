// Thin launcher for the third-party scimmy + scimmy-routers SCIM 2.0 server,
// used by scimgate's interop tests as an outbound provisioning target.
//
//   node tests/interop/scimmy/server.js PORT
//
// Listens on 127.0.0.1:PORT; SCIM base URL is http://127.0.0.1:PORT/scim/v2.
// Everything SCIM (parsing, schema coercion, filters, PATCH, sorting, paging,
// discovery endpoints, errors) is done by the libraries. This file only holds
// the in-memory store that scimmy's ingress/egress/degress handlers read and
// write, as the scimmy documentation describes. No authentication: any
// request (with or without a bearer token) is accepted.
import crypto from "node:crypto";
import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error("usage: node server.js PORT");
    process.exit(2);
}

const {Error: SCIMError, Filter} = SCIMMY.Types;

// One Map per resource type, id -> plain JSON representation (insertion ordered).
function store(kind, unique) {
    const items = new Map();
    return {
        ingress(resource, instance) {
            const data = JSON.parse(JSON.stringify(instance));
            delete data.id;
            delete data.meta;
            const existing = resource.id ? items.get(resource.id) : undefined;
            if (resource.id && !existing)
                throw new SCIMError(404, null, `Resource ${resource.id} not found`);
            // Uniqueness is left to the application by scimmy (see the 409 example
            // in its ingress handler documentation).
            if (unique) {
                const key = String(data[unique] ?? "").toLowerCase();
                for (const [id, other] of items) {
                    if (id !== resource.id && String(other[unique] ?? "").toLowerCase() === key)
                        throw new SCIMError(409, "uniqueness", `${kind} with ${unique} "${data[unique]}" already exists`);
                }
            }
            // A PATCH that changes nothing still calls ingress; keep meta as is.
            if (existing && JSON.stringify({...existing, id: undefined, meta: undefined}) === JSON.stringify({...data, id: undefined, meta: undefined}))
                return existing;
            const now = new Date().toISOString();
            const id = resource.id ?? crypto.randomUUID();
            const stored = {...data, id, meta: {resourceType: kind, created: existing?.meta.created ?? now, lastModified: now}};
            items.set(id, stored);
            return stored;
        },
        egress(resource) {
            if (resource.id) {
                const found = items.get(resource.id);
                if (!found) throw new SCIMError(404, null, `Resource ${resource.id} not found`);
                return found;
            }
            // scimmy's ListResponse applies sortBy/sortOrder/startIndex/count to
            // the full list of matches returned here.
            const all = [...items.values()];
            if (!(resource.filter instanceof Filter)) return all;
            // scimmy 1.3.5's Filter.match throws a TypeError ("Cannot convert
            // undefined or null to object") on a sub-attribute filter such as
            // emails.value or members.value as soon as one resource lacks the
            // attribute; match each resource on its own and read that as no match.
            return all.filter((item) => {
                try {
                    return resource.filter.match([item]).length > 0;
                } catch (ex) {
                    if (ex instanceof TypeError) return false;
                    throw ex;
                }
            });
        },
        degress(resource) {
            if (!items.delete(resource.id))
                throw new SCIMError(404, null, `Resource ${resource.id} not found`);
        },
    };
}

const users = store("User", "userName");
const groups = store("Group", null);

SCIMMY.Resources.declare(SCIMMY.Resources.User)
    .extend(SCIMMY.Schemas.EnterpriseUser, false)
    .ingress(users.ingress)
    .egress(users.egress)
    .degress(users.degress);
SCIMMY.Resources.declare(SCIMMY.Resources.Group)
    .ingress(groups.ingress)
    .egress(groups.egress)
    .degress(groups.degress);

const app = express();
app.use("/scim/v2", new SCIMMYRouters({
    type: "bearer",
    handler: () => undefined,
    // Absolute meta.location values, as seen by the client.
    baseUri: (req) => `${req.protocol}://${req.get("host")}`,
}));

const server = app.listen(port, "127.0.0.1", () => {
    console.log(`scimmy listening on http://127.0.0.1:${port}/scim/v2`);
});
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
