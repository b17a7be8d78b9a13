-- `agenttrace step RUN N`: the step itself.
SELECT step, kind, name, span_id, parent_span_id, start_time, end_time, duration_ms, status_code,
       status_message, ended, model, tool_name, tool_call_id, finish_reason, input_tokens,
       output_tokens, input, output
FROM steps
WHERE run_id = $run_id AND step = $step;
