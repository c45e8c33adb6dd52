import { roleCapOf, type Identity } from './identity.js';

const identity = (roomRoles?: Identity['roomRoles']): Identity => ({
  userId: 'alice',
  verified: true,
  mayCreateRooms: true,
  admin: false,
  address: '127.0.0.1',
  ...(roomRoles ? { roomRoles } : {}),
});

describe('roleCapOf', () => {
  it('is the role the rooms claim lists for the room', () => {
    expect(roleCapOf(identity({ r: 'editor', other: 'viewer' }), 'r')).toBe('editor');
  });

  it('is undefined for a room the claim does not list, or without a claim', () => {
    expect(roleCapOf(identity({ other: 'viewer' }), 'r')).toBeUndefined();
    expect(roleCapOf(identity(), 'r')).toBeUndefined();
  });

  it('does not read inherited keys as rooms', () => {
    expect(roleCapOf(identity({}), 'toString')).toBeUndefined();
    expect(roleCapOf(identity({}), 'constructor')).toBeUndefined();
  });
});
