import { CommitReplies } from './commit-replies.js';

describe('CommitReplies', () => {
  it('an echo is the reply when the store answered first, or before the store answered', () => {
    const replies = new CommitReplies();
    const answeredFirst = replies.open();
    replies.answered(answeredFirst);
    expect(replies.echoIsReply(answeredFirst)).toBe(true);

    const echoedFirst = replies.open();
    expect(replies.echoIsReply(echoedFirst)).toBe(true);
    replies.answered(echoedFirst);
  });

  it('a lost answer after the echo counts as committed: the echo was the reply', () => {
    const replies = new CommitReplies();
    const commitId = replies.open();
    expect(replies.echoIsReply(commitId)).toBe(true);
    expect(replies.answerLost(commitId)).toBe(true);
  });

  it('an echo after a lost answer is no reply, once', () => {
    const replies = new CommitReplies();
    const commitId = replies.open();
    expect(replies.answerLost(commitId)).toBe(false);
    expect(replies.echoIsReply(commitId)).toBe(false);
    expect(replies.echoIsReply(commitId)).toBe(true);
  });

  it('an echo without a commit id (an older instance) is the reply', () => {
    expect(new CommitReplies().echoIsReply(undefined)).toBe(true);
  });

  it('gives each commit its own id', () => {
    const replies = new CommitReplies();
    expect(replies.open()).not.toBe(replies.open());
  });
});
