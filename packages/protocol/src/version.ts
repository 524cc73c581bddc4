/** Version of the Flotilla wire contracts; bumped on any incompatible change to a schema or subject. */
export const PROTOCOL_VERSION = 1 as const;
