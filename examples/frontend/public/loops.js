// The seven loops of a jam (as in Loops With Friends, each member plays one
// of them), and which member plays which.
//
// Every page works the assignment out from the member list alone, so pages
// on different front ends agree without any state beyond the balancer's:
// members in user id order each take the loop their id hashes to, or the
// next free one. With more members than loops (an overfilled jam), the
// extra ones share their hashed loop.

export const LOOPS = [
  {name: 'Drums', color: '#ef476f'},
  {name: 'Bass', color: '#f78c6b'},
  {name: 'Keys', color: '#ffd166'},
  {name: 'Guitar', color: '#06d6a0'},
  {name: 'Strings', color: '#118ab2'},
  {name: 'Synth', color: '#7b61ff'},
  {name: 'Vocals', color: '#c77dff'},
];

// 32-bit FNV-1a of a string's UTF-16 code units.
function hash(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; ++i) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

// userIds (sorted) -> Map(userId -> index into LOOPS).
export function assignLoops(userIds) {
  const taken = new Set();
  const loops = new Map();
  for (const userId of userIds) {
    const wanted = hash(userId) % LOOPS.length;
    let loop = wanted;
    while (taken.has(loop) && taken.size < LOOPS.length) {
      loop = (loop + 1) % LOOPS.length;
    }
    if (taken.has(loop)) loop = wanted;
    taken.add(loop);
    loops.set(userId, loop);
  }
  return loops;
}
