export * from "./four-letter";
