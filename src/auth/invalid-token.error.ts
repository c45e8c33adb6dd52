/** A token that was refused: missing, malformed, badly signed, expired or with bad claims. */
export class InvalidTokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidTokenError';
  }
}
