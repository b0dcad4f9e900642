// dcmjs ships no type declarations; lib.ts gives the few parts ctground uses their types.
declare module 'dcmjs' {
  const dcmjs: unknown;
  export default dcmjs;
}
