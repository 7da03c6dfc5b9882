export * from "./four-letter";
export * from "./four-letter-answers";
export * from "../format/connect-string";
export * from "./table";
export * from "./session";
export * from "./status";
export * from "./smoke";
export * from "./kafka";
