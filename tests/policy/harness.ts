// Builds the arguments @pulumi/policy hands a policy (in the manner of pulumi-policy-aws's test
// utilities), runs one policy on them, and returns the violation messages. Values unknown at
// preview are the library's own sentinels behind its own unknown-checking proxy, as in a preview.
import * as path from "node:path";
import { createRequire } from "node:module";
import type {
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
} from "../../policy/policies";

const REPO = path.resolve(__dirname, "..", "..");
// The policy pack's own install (policy/node_modules): its internal proxy module.
const policyRequire = createRequire(path.join(REPO, "policy", "package.json"));
const proxy = policyRequire("@pulumi/policy/proxy") as {
    unknownCheckingProxy<T>(o: T): T;
    unknownStringValue: unknown;
    unknownArrayValue: unknown;
    unknownObjectValue: unknown;
    unknownNumberValue: unknown;
    unknownBooleanValue: unknown;
};

/** Values that are unknown at preview (computed by a provider during the update). */
export const UNKNOWN_STRING = proxy.unknownStringValue as any;
export const UNKNOWN_ARRAY = proxy.unknownArrayValue as any;
export const UNKNOWN_OBJECT = proxy.unknownObjectValue as any;
export const UNKNOWN_NUMBER = proxy.unknownNumberValue as any;
export const UNKNOWN_BOOLEAN = proxy.unknownBooleanValue as any;

export const STACK = "dev";
export const PROJECT = "zkmigrate";

/** `urn:pulumi:dev::zkmigrate::<parent types>$<type>::<name>`. */
export function urnOf(type: string, name: string, parentTypes: string[] = []): string {
    return `urn:pulumi:${STACK}::${PROJECT}::${[...parentTypes, type].join("$")}::${name}`;
}

function options(o: Partial<PolicyResourceOptions> = {}): PolicyResourceOptions {
    return {
        protect: false,
        ignoreChanges: [],
        aliases: [],
        customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
        additionalSecretOutputs: [],
        ...o,
    };
}

class NotApplicable extends Error {}

export interface ResourceArgsOptions {
    name?: string;
    /** Types of the parents, outermost first (they appear in the URN). */
    parentTypes?: string[];
    /** The policy's config, as `--policy-pack-config` would set it. */
    config?: Record<string, unknown>;
    opts?: Partial<PolicyResourceOptions>;
}

/** The arguments of a resource policy for one resource. */
export function resourceArgs(type: string, props: Record<string, unknown>, o: ResourceArgsOptions = {}): ResourceValidationArgs {
    const name = o.name ?? "test";
    const wrapped = proxy.unknownCheckingProxy(structuredCloneKeepingSentinels(props));
    return {
        type,
        props: wrapped,
        urn: urnOf(type, name, o.parentTypes),
        name,
        opts: options(o.opts),
        stackTags: new Map(),
        isType: () => false,
        asType: () => undefined,
        getConfig: <T extends object>() => (o.config ?? {}) as T,
        notApplicable: (reason?: string): never => {
            throw new NotApplicable(reason);
        },
    };
}

/** Runs a resource policy on `args`; returns its violation messages in order. */
export async function runResourcePolicy(policy: ResourceValidationPolicy, args: ResourceValidationArgs): Promise<string[]> {
    const out: string[] = [];
    const validations = Array.isArray(policy.validateResource) ? policy.validateResource : policy.validateResource ? [policy.validateResource] : [];
    for (const v of validations) {
        try {
            await v(args, (message) => out.push(message));
        } catch (e) {
            if (!(e instanceof NotApplicable)) throw e;
        }
    }
    return out;
}

export interface StackResourceSpec {
    type: string;
    name: string;
    props: Record<string, unknown>;
    parent?: string;
    /** Names of the resources it depends on. */
    dependsOn?: string[];
    opts?: Partial<PolicyResourceOptions>;
}

/** The arguments of a stack policy: resources by name, parents and dependencies wired up. */
export function stackArgs(specs: StackResourceSpec[], config: Record<string, unknown> = {}): StackValidationArgs {
    const byName = new Map<string, PolicyResource>();
    const typeChain = (s: StackResourceSpec): string[] => {
        const parent = s.parent ? specs.find((x) => x.name === s.parent) : undefined;
        return parent ? [...typeChain(parent), parent.type] : [];
    };
    for (const s of specs) {
        byName.set(s.name, {
            type: s.type,
            name: s.name,
            urn: urnOf(s.type, s.name, typeChain(s)),
            props: proxy.unknownCheckingProxy(structuredCloneKeepingSentinels(s.props)),
            opts: options(s.opts),
            dependencies: [],
            propertyDependencies: {},
            isType: () => false,
            asType: () => undefined,
        });
    }
    for (const s of specs) {
        const r = byName.get(s.name)!;
        if (s.parent) r.parent = byName.get(s.parent);
        r.dependencies = (s.dependsOn ?? []).map((d) => {
            const dep = byName.get(d);
            if (!dep) throw new Error(`stackArgs: ${s.name} depends on unknown resource ${d}`);
            return dep;
        });
        if (s.parent) r.opts.parent = byName.get(s.parent)?.urn;
    }
    return {
        resources: [...byName.values()],
        stackTags: new Map(),
        getConfig: <T extends object>() => config as T,
        notApplicable: (reason?: string): never => {
            throw new NotApplicable(reason);
        },
    };
}

/** Runs a stack policy; returns its violation messages in order. */
export async function runStackPolicy(policy: StackValidationPolicy, args: StackValidationArgs): Promise<string[]> {
    const out: string[] = [];
    try {
        await policy.validateStack(args, (message) => out.push(message));
    } catch (e) {
        if (!(e instanceof NotApplicable)) throw e;
    }
    return out;
}

/** A deep copy that keeps the unknown sentinels (objects compared by identity) as they are. */
function structuredCloneKeepingSentinels<T>(v: T): T {
    const sentinels = new Set([UNKNOWN_STRING, UNKNOWN_ARRAY, UNKNOWN_OBJECT, UNKNOWN_NUMBER, UNKNOWN_BOOLEAN]);
    const copy = (x: any): any => {
        if (sentinels.has(x) || x === null || typeof x !== "object") return x;
        if (Array.isArray(x)) return x.map(copy);
        return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, copy(y)]));
    };
    return copy(v);
}
