package keepalived

// node is one configuration line with the block that follows it, if any.
type node struct {
	pos   Pos
	words []string // words[0] is the keyword
	raw   string
	kids  []*node
	block bool // the line was followed by { ... }
}

func (n *node) kw() string { return n.words[0] }

// buildTree nests lines into blocks. A '{' opens the block of the line
// just before it, whether it was on the same line or the next
// (keepalived's need_bob); '}' closes the innermost block. Blocks may
// start in one file and end in an included one, as in keepalived, which
// reads includes as part of one stream.
func buildTree(lines []line, d *diags) []*node {
	root := &node{block: true}
	stack := []*node{root}
	var last *node
	for _, l := range lines {
		cur := stack[len(stack)-1]
		switch l.words[0] {
		case "{":
			if last != nil && !last.block {
				last.block = true
				stack = append(stack, last)
			} else {
				d.add(l.pos, "{", false, "unexpected '{' (a block must follow a keyword line)")
				// The unexpected block's contents are dropped.
				stack = append(stack, &node{pos: l.pos, words: l.words, block: true})
			}
			last = nil
		case "}":
			if len(stack) == 1 {
				d.add(l.pos, "}", false, "extra '}' found")
			} else {
				stack = stack[:len(stack)-1]
			}
			last = nil
		default:
			n := &node{pos: l.pos, words: l.words, raw: l.raw}
			cur.kids = append(cur.kids, n)
			last = n
		}
	}
	for len(stack) > 1 {
		top := stack[len(stack)-1]
		d.add(top.pos, top.kw(), false, "missing '}': the block opened here is not closed")
		stack = stack[:len(stack)-1]
	}
	return root.kids
}
