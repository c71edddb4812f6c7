/** The part of js-yaml 3 the infra tests use (the package ships no types). */
declare module 'js-yaml' {
  export function safeLoadAll(text: string): unknown[];
  export function safeLoad(text: string): unknown;
}
