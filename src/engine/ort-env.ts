/**
 * Imported before onnxruntime-node, for its side effect: ONNX Runtime's telemetry is turned off.
 * Left on, every process that loads it writes ~/.cache/Microsoft/DeveloperTools/.onnxruntime/
 * (a device id and an event database) and an empty mat-debug-<pid>.log and .ses in the temp folder,
 * and nothing ever removes them; ctground writes nothing outside its outputs. The variable is read
 * by the native library from the process environment, which an assignment here sets (in the main
 * thread, before any worker starts), so worker threads inherit it.
 */
process.env.ORT_DISABLE_TELEMETRY = '1';
