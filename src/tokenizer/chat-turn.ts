/**
 * One turn of a ChatGLM3 prompt, as `build_single_message(role, metadata, message)` takes it:
 * `<|role|>` + encode(metadata + "\n") + encode(content). Metadata is empty except on an assistant
 * turn that calls a tool (the tool's name).
 */
export const TURN_ROLES = ['system', 'user', 'assistant', 'observation'] as const;
export type TurnRole = (typeof TURN_ROLES)[number];

export interface ChatTurn {
  role: TurnRole;
  metadata: string;
  content: string;
}
