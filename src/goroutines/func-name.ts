// How Go spells a function name when it prints one, in one place. The model keeps what runtime.CallersFrames
// reports (runtime.funcNameForPrint: a generic function's shape arguments as "[...]"); a traceback prints that,
// except that runtime.gopanic prints as "panic" (runtime.printFuncName).

/** runtime.funcNameForPrint: "main.F[go.shape.int]" → "main.F[...]". Names already in that form are unchanged. */
export function funcNameForPrint(name: string): string {
  const i = name.indexOf('[');
  if (i < 0) return name;
  const j = name.lastIndexOf(']');
  return j <= i ? name : `${name.slice(0, i)}[...]${name.slice(j + 1)}`;
}

/** The name as a traceback prints it (runtime.printFuncName), or, with `fromTraceback`, the model's name of a printed one. */
export function tracebackFuncName(name: string, fromTraceback = false): string {
  if (fromTraceback) return name === 'panic' ? 'runtime.gopanic' : name;
  return name === 'runtime.gopanic' ? 'panic' : funcNameForPrint(name);
}
